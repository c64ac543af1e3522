"""API routes of this app, mounted under /api/v1/."""
from django.urls import path

from trading.api import accounts as accounts_api
from trading.api import candles as candles_api
from trading.api import trades as trades_api

urlpatterns: list = [
    path("candles/", candles_api.CandleListApi.as_view(), name="candle-list"),
]
urlpatterns += [
    path("accounts/", accounts_api.AccountListApi.as_view(), name="account-list"),
    path("accounts/<int:pk>/", accounts_api.AccountDetailApi.as_view(), name="account-detail"),
    path("accounts/<int:pk>/pause/", accounts_api.AccountPauseApi.as_view(), name="account-pause"),
    path("accounts/<int:pk>/resume/", accounts_api.AccountResumeApi.as_view(), name="account-resume"),
    path("trades/", trades_api.TradeListApi.as_view(), name="trade-list"),
    path("trades/<int:pk>/", trades_api.TradeDetailApi.as_view(), name="trade-detail"),
    path("trades/<int:pk>/close/", trades_api.TradeCloseApi.as_view(), name="trade-close"),
    path("decisions/", trades_api.DecisionListApi.as_view(), name="decision-list"),
]

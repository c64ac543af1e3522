"""The exchange broker's ccxt client: the testnet (or the exchange's demo trading) unless real money is switched on twice.

Real money needs EXCHANGE_REAL_MONEY=true *and* the account's `real_money` flag; either alone
keeps orders on the testnet, and a real-money client is announced with a loud warning each
time one is built. API keys come only from the environment (EXCHANGE_API_KEY,
EXCHANGE_API_SECRET): they are never stored in the database nor logged.
"""
import logging
import os

import ccxt
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from trading.models import PaperAccount

logger = logging.getLogger(__name__)
# Binance retired its futures testnet for "demo trading": ccxt accepts set_sandbox_mode for these
# and then refuses every request, so they are sent to demo trading instead.
DEMO_TRADING_INSTEAD_OF_SANDBOX = {"binanceusdm", "binancecoinm"}


def uses_real_money(account: PaperAccount) -> bool:
    return bool(settings.EXCHANGE_REAL_MONEY and account.real_money)


def exchange_order_client(account: PaperAccount, *, session=None) -> ccxt.Exchange:
    """A signed ccxt client for the account's orders on TRADING_EXCHANGE; `session` replaces its HTTP layer (tests)."""
    key, secret = os.environ.get("EXCHANGE_API_KEY"), os.environ.get("EXCHANGE_API_SECRET")
    if not key or not secret:
        raise ImproperlyConfigured("Set EXCHANGE_API_KEY and EXCHANGE_API_SECRET (environment only) to place orders on an exchange.")
    options = {"apiKey": key, "secret": secret, "enableRateLimit": True}
    if session is not None:
        options["session"] = session
    client = getattr(ccxt, settings.TRADING_EXCHANGE)(options)
    if uses_real_money(account):
        logger.warning("REAL MONEY: account %s places orders on %s's live market, not its testnet", account.name, settings.TRADING_EXCHANGE)
        return client
    if client.id in DEMO_TRADING_INSTEAD_OF_SANDBOX:
        client.enable_demo_trading(True)
        return client
    try:
        client.set_sandbox_mode(True)
    except ccxt.NotSupported:
        raise ImproperlyConfigured(f"{settings.TRADING_EXCHANGE} has no testnet in ccxt: only real money would work there.") from None
    return client

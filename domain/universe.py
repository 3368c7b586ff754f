"""The tradable universe: fictional listed companies with their risk parameters, and the market indices."""

from dataclasses import dataclass

__all__ = ["SymbolSpec", "IndexSpec", "DEFAULT_UNIVERSE", "DEFAULT_INDICES"]


@dataclass(frozen=True)
class SymbolSpec:
    """One listed symbol: identity, starting price in cents, annualized volatility, beta and daily volume."""

    symbol: str
    name: str
    sector: str
    price_cents: int
    volatility: float  # annualized, e.g. 0.30
    beta: float
    avg_volume: int = 2_000_000  # shares per simulated trading day


@dataclass(frozen=True)
class IndexSpec:
    """One market index: its constituents and its value at the index base date."""

    symbol: str
    name: str
    constituents: tuple[str, ...]
    base_value: float = 1000.0


def _s(symbol: str, name: str, sector: str, dollars: float, vol: float, beta: float, avg_volume: int) -> SymbolSpec:
    return SymbolSpec(symbol, name, sector, round(dollars * 100), vol, beta, avg_volume)


TECH, HEALTH, FIN, ENERGY, CONSUMER, INDUSTRIAL, UTIL, COMM = (
    "Technology",
    "Healthcare",
    "Financials",
    "Energy",
    "Consumer",
    "Industrials",
    "Utilities",
    "Communication",
)

# Fictional companies. Prices are kept above about $30 so that rounding to whole cents adds no visible
# bid-ask-bounce-like negative autocorrelation to 1-minute returns.
DEFAULT_UNIVERSE: tuple[SymbolSpec, ...] = (
    _s("NVTX", "Novatex Systems", TECH, 182.40, 0.38, 1.30, 9_000_000),
    _s("QBIT", "Qubitline Computing", TECH, 64.15, 0.55, 1.50, 6_500_000),
    _s("CLDW", "Cloudwright Software", TECH, 248.90, 0.34, 1.20, 3_200_000),
    _s("MCRS", "Microspan Semiconductors", TECH, 97.30, 0.42, 1.40, 7_400_000),
    _s("DTVL", "Datavault Inc.", TECH, 41.75, 0.36, 1.10, 4_100_000),
    _s("PIXL", "Pixelforge Labs", TECH, 128.60, 0.40, 1.25, 2_800_000),
    _s("MEDX", "Medexa Therapeutics", HEALTH, 73.20, 0.32, 0.80, 2_600_000),
    _s("GNMC", "Genomica Biosciences", HEALTH, 112.45, 0.48, 1.00, 1_900_000),
    _s("CRVL", "Curaville Health", HEALTH, 156.80, 0.22, 0.70, 2_200_000),
    _s("ORTG", "Orthogen Devices", HEALTH, 88.10, 0.27, 0.85, 1_400_000),
    _s("PHLN", "Pharmaline Labs", HEALTH, 54.60, 0.25, 0.65, 3_000_000),
    _s("BKNR", "Banknor Financial", FIN, 48.30, 0.26, 1.10, 8_200_000),
    _s("CAPX", "Capitex Group", FIN, 132.70, 0.28, 1.15, 2_700_000),
    _s("INSW", "Insurway Holdings", FIN, 91.40, 0.21, 0.85, 1_600_000),
    _s("LDGR", "Ledgerpoint Payments", FIN, 215.60, 0.30, 1.10, 3_300_000),
    _s("FDLT", "Fidelion Trust", FIN, 67.90, 0.22, 0.95, 2_100_000),
    _s("PTRL", "Petrolune Energy", ENERGY, 78.45, 0.32, 0.90, 5_600_000),
    _s("SUNM", "Sunmere Solar", ENERGY, 36.20, 0.50, 1.20, 4_800_000),
    _s("DRLX", "Drillex Services", ENERGY, 42.80, 0.40, 1.10, 3_900_000),
    _s("GSCD", "Gascadia Pipelines", ENERGY, 59.10, 0.22, 0.70, 2_300_000),
    _s("BRWN", "Brewnest Coffee", CONSUMER, 86.30, 0.26, 0.90, 3_600_000),
    _s("SHPR", "Shopright Retail", CONSUMER, 142.50, 0.28, 1.00, 4_400_000),
    _s("AUTV", "Autovance Motors", CONSUMER, 215.00, 0.50, 1.40, 9_500_000),
    _s("HOMY", "Homely Goods", CONSUMER, 47.60, 0.24, 0.80, 2_000_000),
    _s("FTRL", "Fitrail Apparel", CONSUMER, 38.90, 0.33, 1.05, 2_500_000),
    _s("ARLT", "Aerolith Aerospace", INDUSTRIAL, 176.20, 0.27, 1.05, 2_400_000),
    _s("RLST", "Railstar Logistics", INDUSTRIAL, 96.80, 0.24, 0.95, 1_800_000),
    _s("STNB", "Stonebridge Construction", INDUSTRIAL, 63.40, 0.28, 1.10, 2_200_000),
    _s("MCHX", "Machinex Industries", INDUSTRIAL, 121.30, 0.26, 1.00, 1_700_000),
    _s("FRWY", "Freightway Carriers", INDUSTRIAL, 52.70, 0.30, 1.05, 2_900_000),
    _s("PWRG", "Powergrid Utilities", UTIL, 71.20, 0.17, 0.45, 2_600_000),
    _s("HYDL", "Hydrolux Water", UTIL, 44.90, 0.16, 0.40, 1_500_000),
    _s("VLTR", "Voltaris Electric", UTIL, 58.30, 0.19, 0.50, 2_000_000),
    _s("GRNY", "Greenergy Renewables", UTIL, 33.70, 0.30, 0.75, 3_100_000),
    _s("STRM", "Streamly Media", COMM, 312.40, 0.40, 1.20, 4_700_000),
    _s("TLXA", "Telexa Communications", COMM, 39.80, 0.20, 0.60, 6_000_000),
    _s("SOCL", "Socialite Networks", COMM, 187.90, 0.45, 1.30, 5_200_000),
    _s("GMRA", "Gamerra Interactive", COMM, 74.60, 0.42, 1.15, 3_400_000),
)

DEFAULT_INDICES: tuple[IndexSpec, ...] = (
    IndexSpec("SQX", "Stock Quest Composite", tuple(s.symbol for s in DEFAULT_UNIVERSE)),
    IndexSpec(
        "SQTECH",
        "Stock Quest Technology",
        tuple(s.symbol for s in DEFAULT_UNIVERSE if s.sector in (TECH, COMM)),
    ),
    IndexSpec(
        "SQVAL",
        "Stock Quest Value & Industrials",
        tuple(s.symbol for s in DEFAULT_UNIVERSE if s.sector in (FIN, ENERGY, INDUSTRIAL, UTIL)),
    ),
)

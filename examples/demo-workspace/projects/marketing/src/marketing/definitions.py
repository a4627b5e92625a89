import dagster as dg


@dg.asset
def marketing_report() -> None:
    """A stand-in asset of the marketing code location."""


defs = dg.Definitions(assets=[marketing_report])

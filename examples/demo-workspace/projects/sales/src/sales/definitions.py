import dagster as dg


@dg.asset
def sales_report() -> None:
    """A stand-in asset of the sales code location."""


defs = dg.Definitions(assets=[sales_report])

import dagster as dg


@dg.asset
def ops_core_report() -> None:
    """A stand-in asset of the ops-core code location."""


defs = dg.Definitions(assets=[ops_core_report])

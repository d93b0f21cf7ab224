from rlvr.config.loader import expand_sweep, load_config, to_yaml, validate
from rlvr.config.schema import RlvrConfig

__all__ = ["RlvrConfig", "expand_sweep", "load_config", "to_yaml", "validate"]

"""A third-party adapter: records every hook call it receives into a JSON-lines file."""

import seetrain.adapters

adapter = seetrain.adapters.Adapter(
    name="thirdparty",
    mode="callback",
    factory="seetrain_thirdparty.callback:create",
    plugin="seetrain_thirdparty.hooks:plugin",
    description="test adapter",
)

tracker_adapter = seetrain.adapters.Adapter(
    name="thirdparty_tracker", mode="tracker", factory="seetrain_thirdparty.callback:create_tracker"
)
autolog_adapter = seetrain.adapters.Adapter(
    name="thirdparty_autolog", mode="autolog", factory="seetrain_thirdparty.callback:create_autolog"
)

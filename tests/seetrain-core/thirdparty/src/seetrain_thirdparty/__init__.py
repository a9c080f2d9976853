"""A third-party adapter: records every hook call it receives into a JSON-lines file."""

import seetrain.adapters

adapter = seetrain.adapters.Adapter(
    name="thirdparty",
    mode="callback",
    factory="seetrain_thirdparty.callback:create",
    plugin="seetrain_thirdparty.hooks:plugin",
    description="test adapter",
)

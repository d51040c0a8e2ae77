"""The network and what is done with it: Flax nets, the searches (THE agent and self-play's,
run by `tree_search`: mctx's algorithms at a cost per simulation that does not grow with the
tree), ONNX export, and loading a trained model from any model path.

    network = nets.make_network(config.model, game)
    result = search.agent_search(game, network.apply, params, key, states, simulations=64)
    model = load_model("site/models/connect4")     # game, network, params, iteration, ...
"""

from cartridge_jax.model import export, load, nets, search, tree_search
from cartridge_jax.model.export import export_model, load_exported
from cartridge_jax.model.load import Model, ModelError, load_model

__all__ = ["Model", "ModelError", "export", "export_model", "load", "load_exported",
           "load_model", "nets", "search", "tree_search"]

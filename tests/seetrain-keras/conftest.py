"""Keras adapter tests: quiet a known warning of Keras' torch backend under numpy 2."""


def pytest_configure(config):
    # Keras 3.15 calls np.array(tensor) internally (model.fit, optimizer.get_config()); numpy 2
    # warns once per call that torch's __array__ lacks `copy`. Not ours, and it buries the rest.
    config.addinivalue_line("filterwarnings", "ignore:__array__ implementation doesn't accept a copy:DeprecationWarning")

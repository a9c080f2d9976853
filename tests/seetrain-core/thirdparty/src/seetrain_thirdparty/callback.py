class Callback:
    """The framework-facing object: logs through the run it was given."""

    def __init__(self, run, prefix="tp"):
        self.run = run
        self.prefix = prefix

    def on_step(self, step, value):
        self.run.log({f"{self.prefix}/value": value}, step=step)


def create(run, **options):
    return Callback(run, **options)


class Tracker:
    """A tracker-mode object: the framework hands it a dict per step."""

    def __init__(self, run):
        self.run = run

    def log(self, values, step=None):
        self.run.log(values, step=step)


def create_tracker(run, **options):
    return Tracker(run)


class Autolog:
    """An autolog handle: patches ``seetrain_thirdparty_framework.compute`` while enabled."""

    def __init__(self, run):
        self.run = run
        self.original = None

    def enable(self):
        import seetrain_thirdparty_framework as fw

        if self.original is not None:
            return
        self.original = fw.compute
        original, run = self.original, self.run

        def compute(x):
            result = original(x)
            run.log({"compute/result": result})
            return result

        fw.compute = compute

    def disable(self):
        import seetrain_thirdparty_framework as fw

        if self.original is not None:
            fw.compute, self.original = self.original, None


def create_autolog(run, **options):
    return Autolog(run)

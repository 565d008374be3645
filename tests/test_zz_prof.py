import cProfile, pstats, time
pytest_plugins = ["pytester"]
from tests.test_pytest_plugin import repo, run  # noqa
def test_profile(repo):
    run(repo)
    t=time.perf_counter()
    cProfile.runctx("run(repo)", globals(), {"repo": repo, "run": run}, "/tmp/p3")
    print("second run", time.perf_counter()-t)
    pstats.Stats("/tmp/p3").sort_stats("cumtime").print_stats(25)

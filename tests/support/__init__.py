"""Code the tests share: paths, starting a real server, assertions, reference engines (OpenDSS driven directly) and
fuzzing strategies. Test modules import from here, never from each other or from conftest.py."""

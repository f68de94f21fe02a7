"""The offline demo: a synthetic glacier with a known velocity field and its static STAC
catalogue (:mod:`.synthetic`)."""

from icetrack.demo.synthetic import DemoGlacier, make_demo

__all__ = ["DemoGlacier", "make_demo"]

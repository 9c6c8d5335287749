"""benchbot: benchmark harness for robotic grasp detection (GQ-STN paper protocol)."""

__version__ = "0.1.0"

"""What runs on the board: numpy, onnxruntime and MQTT only (no torch, no FastAPI)."""

"""guided_audio: practice script templates rendered to voice-guided audio sessions."""

__version__ = "0.1.0"

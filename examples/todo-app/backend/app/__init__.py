"""Todo AI Chatbot backend (example application deployed by todo-deploy)."""

__version__ = "0.1.0"

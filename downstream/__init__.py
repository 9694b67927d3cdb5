"""downstream package."""

"""WormSpace."""

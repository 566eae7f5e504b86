"""The certified layers, bottom to top: network, acceptor, WOR, WOS, WormSpace."""

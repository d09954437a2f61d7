"""Sans-IO protocol code: bytes in, events out. No sockets, threads, files or clocks."""

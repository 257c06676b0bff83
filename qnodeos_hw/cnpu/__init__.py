"""The CNPU: runs netqasm SDK programs as threads, each with a TCP connection to its
node's QNPU, classical sockets over TCP, and the simulated-network runner."""

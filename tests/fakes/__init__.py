"""Fake islands: real servers on loopback that the connectors' real code talks to."""

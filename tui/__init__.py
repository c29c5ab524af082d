"""tunedeck's user interfaces: the Textual app and the headless CLI."""

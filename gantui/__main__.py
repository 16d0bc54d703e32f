from gantui.cli import entry

entry()

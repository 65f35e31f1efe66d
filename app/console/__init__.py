"""The Textual operator console. Import `OvercommitApp` from `app.console.app`."""

"""Guest memory mechanisms: frames, content, page touches (later: sharing, balloon, swap...)."""

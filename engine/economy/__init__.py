"""Money: revenue, costs and penalties."""

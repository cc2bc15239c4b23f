"""What calls cost: model prices, the cost of each call, spend."""

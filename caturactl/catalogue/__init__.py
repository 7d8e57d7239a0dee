"""The catalogue: products and the stock at each location."""

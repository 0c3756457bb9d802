"""Reports on one customer and the output writers the query commands share."""

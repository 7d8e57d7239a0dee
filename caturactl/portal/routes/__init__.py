"""The portal's routes, one module per thing a partner does: its account, its purchase orders,
its availability, its returns."""

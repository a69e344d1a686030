"""The operator families: one module per structure, holding its class and its rules."""

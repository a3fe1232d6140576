"""Generated code only: do not edit; regenerate with `make proto`."""

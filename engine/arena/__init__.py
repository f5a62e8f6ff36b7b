"""The optimizer arena: 2-D loss surfaces and optimizers racing across them
(the book's Figures 11-6 and 11-7, live)."""

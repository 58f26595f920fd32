"""LM generation backends: batched rendered prompts in, generated texts out."""

"""The assistant's local models: TF-IDF n-grams with a linear model, VADER, a language check."""

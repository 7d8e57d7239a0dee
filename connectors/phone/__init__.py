"""Orders a person takes at the terminal (by phone, e-mail or at the counter): a sales channel
with nothing to import and nobody to tell but the buyer."""

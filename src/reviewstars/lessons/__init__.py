"""The foundations the ladder stands on, as lessons a command runs (`reviewstars lessons`):
a first neural network on the 2-D circles (`basics`), and how a sub-word tokenizer cuts
real reviews (`vocabulary`)."""

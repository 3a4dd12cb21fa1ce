"""Feature encoding: task feature builders and generic encoders, all with the sklearn
fit/transform contract so they are fit on the training fold only."""

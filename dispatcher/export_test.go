package dispatcher

// WaitingToBeDecided is how many requests wait for the loop to take them.
func (d *Dispatcher) WaitingToBeDecided() int64 { return d.undecided.Load() }

package docker

// WakeSingleUseRefill has the refill worker look at the pools now, as a
// run or a start would: a test that moves the clock calls it.
func (r *Runtime) WakeSingleUseRefill() { r.single.wake() }

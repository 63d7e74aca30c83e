package docker

// WakeSingleUseRefill has the refill worker look at the pools now, as a
// run or a start would: a test that moves the clock calls it.
func (r *Runtime) WakeSingleUseRefill() { r.single.wake() }

// TendSingleUse has the pools looked at now, as the refill worker does,
// and returns once that is done: what it did not start, it held back.
func (r *Runtime) TendSingleUse() { r.single.tend(r.single.refillCtx) }

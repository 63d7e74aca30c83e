package httpapi

// WriteTriggerReply is writeTriggerReply, for the status mapping's tests.
var WriteTriggerReply = writeTriggerReply

// CallInput is callInput, for its fuzz target.
var CallInput = callInput

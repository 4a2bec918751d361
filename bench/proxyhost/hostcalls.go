package proxyhost

// The proxy-wasm host functions. Each reads its arguments from the wazero
// stack s (i32 arguments in the low 32 bits) and returns the call result.

func (vm *VM) proxyLog(s []uint64) status {
	level := LogLevel(uint32(s[0]))
	if int(level) < len(vm.logCounts) {
		vm.logCounts[level]++
	}
	if level < vm.cfg.LogLevel {
		return statusOK
	}
	msg, ok := vm.read(s[1], s[2])
	if !ok {
		return statusBadArgument
	}
	if len(vm.logs) == maxLogs {
		copy(vm.logs, vm.logs[1:])
		vm.logs = vm.logs[:maxLogs-1]
	}
	vm.logs = append(vm.logs, LogEntry{Level: level, Message: string(msg)})
	return statusOK
}

func (vm *VM) sendLocalResponse(s []uint64) status {
	h := vm.cur
	if h == nil {
		return statusBadArgument
	}
	details, ok1 := vm.read(s[1], s[2])
	body, ok2 := vm.read(s[3], s[4])
	headers, ok3 := vm.read(s[5], s[6])
	if !ok1 || !ok2 || !ok3 {
		return statusBadArgument
	}
	h.local = &LocalResponse{
		StatusCode: uint32(s[0]),
		Details:    string(details),
		Body:       append([]byte(nil), body...),
		Headers:    decodeMap(headers),
		GRPCStatus: int32(uint32(s[7])),
	}
	return statusOK
}

func (vm *VM) getSharedData(s []uint64) status {
	key, ok := vm.read(s[0], s[1])
	if !ok {
		return statusBadArgument
	}
	value, cas, found := vm.shared.get(key)
	if !found {
		return statusNotFound
	}
	if st := vm.copyOut(value, s[2], s[3]); st != statusOK {
		return st
	}
	if !vm.mem.WriteUint32Le(uint32(s[4]), cas) {
		return statusBadArgument
	}
	return statusOK
}

func (vm *VM) setSharedData(s []uint64) status {
	key, ok1 := vm.read(s[0], s[1])
	value, ok2 := vm.read(s[2], s[3])
	if !ok1 || !ok2 {
		return statusBadArgument
	}
	return vm.shared.set(key, value, uint32(s[4]))
}

func (vm *VM) registerSharedQueue(s []uint64) status {
	name, ok := vm.read(s[0], s[1])
	if !ok {
		return statusBadArgument
	}
	if !vm.mem.WriteUint32Le(uint32(s[2]), vm.shared.register(name)) {
		return statusBadArgument
	}
	return statusOK
}

func (vm *VM) resolveSharedQueue(s []uint64) status {
	name, ok := vm.read(s[2], s[3])
	if !ok {
		return statusBadArgument
	}
	id, found := vm.shared.resolve(name)
	if !found {
		return statusNotFound
	}
	if !vm.mem.WriteUint32Le(uint32(s[4]), id) {
		return statusBadArgument
	}
	return statusOK
}

func (vm *VM) dequeueSharedQueue(s []uint64) status {
	value, st := vm.shared.dequeue(uint32(s[0]))
	if st != statusOK {
		return st
	}
	return vm.copyOut(value, s[1], s[2])
}

func (vm *VM) enqueueSharedQueue(s []uint64) status {
	value, ok := vm.read(s[1], s[2])
	if !ok {
		return statusBadArgument
	}
	return vm.shared.enqueue(uint32(s[0]), value)
}

func (vm *VM) getHeaderMapValue(s []uint64) status {
	m := vm.headerMap(s[0])
	key, ok := vm.readKey(s[1], s[2])
	if m == nil || !ok {
		return statusBadArgument
	}
	v, found := m.get(key)
	if !found {
		return statusNotFound
	}
	return vm.copyOut(v, s[3], s[4])
}

func (vm *VM) addHeaderMapValue(s []uint64) status {
	m := vm.headerMap(s[0])
	key, ok1 := vm.readKey(s[1], s[2])
	value, ok2 := vm.read(s[3], s[4])
	if m == nil || !ok1 || !ok2 {
		return statusBadArgument
	}
	m.add(key, value)
	return statusOK
}

func (vm *VM) replaceHeaderMapValue(s []uint64) status {
	m := vm.headerMap(s[0])
	key, ok1 := vm.readKey(s[1], s[2])
	value, ok2 := vm.read(s[3], s[4])
	if m == nil || !ok1 || !ok2 {
		return statusBadArgument
	}
	m.replace(key, value)
	return statusOK
}

func (vm *VM) removeHeaderMapValue(s []uint64) status {
	m := vm.headerMap(s[0])
	key, ok := vm.readKey(s[1], s[2])
	if m == nil || !ok {
		return statusBadArgument
	}
	m.remove(key)
	return statusOK
}

func (vm *VM) getHeaderMapPairs(s []uint64) status {
	m := vm.headerMap(s[0])
	if m == nil {
		return statusBadArgument
	}
	n := m.size()
	ptr, buf, ok := vm.allocGuest(n)
	if !ok {
		return statusInternalError
	}
	m.serialize(buf)
	return vm.putPtrSize(ptr, n, s[1], s[2])
}

func (vm *VM) setHeaderMapPairs(s []uint64) status {
	m := vm.headerMap(s[0])
	data, ok := vm.read(s[1], s[2])
	if m == nil || !ok || !m.deserialize(data) {
		return statusBadArgument
	}
	return statusOK
}

// buffer returns the buffer of a proxy-wasm buffer type and whether the
// plugin may write it.
func (vm *VM) buffer(bufferType uint64) (*[]byte, bool) {
	switch uint32(bufferType) {
	case 6:
		return &vm.cfg.VMConfig, false
	case 7:
		return &vm.cfg.PluginConfig, false
	}
	h := vm.cur
	if h == nil {
		return nil, false
	}
	switch uint32(bufferType) {
	case 0:
		return &h.reqBody, true
	case 1:
		return &h.respBody, true
	}
	return nil, false
}

func (vm *VM) getBufferBytes(s []uint64) status {
	p, _ := vm.buffer(s[0])
	if p == nil {
		return statusNotFound
	}
	buf, start, size := *p, int64(int32(uint32(s[1]))), int64(int32(uint32(s[2])))
	if len(buf) == 0 {
		return statusNotFound
	}
	if start < 0 || start >= int64(len(buf)) || size < 0 {
		return statusBadArgument
	}
	end := min(start+size, int64(len(buf)))
	return vm.copyOut(buf[start:end], s[3], s[4])
}

// setBufferBytes follows the SDK's conventions: start 0 and size 0 prepend,
// start past the end appends, otherwise [start, start+size) is replaced.
func (vm *VM) setBufferBytes(s []uint64) status {
	p, writable := vm.buffer(s[0])
	data, ok := vm.read(s[3], s[4])
	if p == nil || !writable || !ok {
		return statusBadArgument
	}
	buf := *p
	start, size := int(uint32(s[1])), int(uint32(s[2]))
	switch {
	case start == 0 && size == 0:
		buf = append(append([]byte(nil), data...), buf...)
	case start >= len(buf):
		buf = append(buf, data...)
	default:
		end := len(buf)
		if size < end-start {
			end = start + size
		}
		buf = append(append(append([]byte(nil), buf[:start]...), data...), buf[end:]...)
	}
	*p = buf
	return statusOK
}

func (vm *VM) continueStream(s []uint64) status {
	if vm.cur == nil || uint32(s[0]) > 1 {
		return statusBadArgument
	}
	vm.cur.continued[uint32(s[0])] = true
	return statusOK
}

func (vm *VM) closeStream(s []uint64) status {
	if vm.cur == nil || uint32(s[0]) > 1 {
		return statusBadArgument
	}
	vm.cur.closedStream[uint32(s[0])] = true
	return statusOK
}

func (vm *VM) httpCall(s []uint64) status {
	upstream, ok1 := vm.read(s[0], s[1])
	headers, ok2 := vm.read(s[2], s[3])
	body, ok3 := vm.read(s[4], s[5])
	if !ok1 || !ok2 || !ok3 {
		return statusBadArgument
	}
	vm.httpCalls = append(vm.httpCalls, HTTPCall{
		Upstream: string(upstream), Headers: decodeMap(headers),
		Body: append([]byte(nil), body...), Timeout: uint32(s[8]),
	})
	if !vm.mem.WriteUint32Le(uint32(s[9]), uint32(len(vm.httpCalls))) {
		return statusBadArgument
	}
	return statusOK
}

func (vm *VM) callForeignFunction([]uint64) status { return statusNotFound }

func (vm *VM) setTickPeriod(s []uint64) status {
	vm.tickPeriod = uint32(s[0])
	return statusOK
}

func (vm *VM) setEffectiveContext(s []uint64) status {
	id := uint32(s[0])
	if id == vm.rootID {
		vm.cur = nil
		return statusOK
	}
	h, ok := vm.contexts[id]
	if !ok {
		return statusBadArgument
	}
	vm.cur = h
	return statusOK
}

func (vm *VM) proxyDone([]uint64) status {
	vm.doneCalled = true
	return statusOK
}

func (vm *VM) defineMetric(s []uint64) status {
	name, ok := vm.read(s[1], s[2])
	if !ok || uint32(s[0]) > 2 {
		return statusBadArgument
	}
	id, found := vm.metricIDs[string(name)]
	if !found {
		id = uint32(len(vm.metrics))
		vm.metrics = append(vm.metrics, Metric{Name: string(name), Type: uint32(s[0])})
		vm.metricIDs[string(name)] = id
	}
	if !vm.mem.WriteUint32Le(uint32(s[3]), id) {
		return statusBadArgument
	}
	return statusOK
}

func (vm *VM) incrementMetric(s []uint64) status {
	id := uint32(s[0])
	if int(id) >= len(vm.metrics) {
		return statusNotFound
	}
	vm.metrics[id].Value += s[1] // two's complement: a negative offset decrements
	return statusOK
}

func (vm *VM) recordMetric(s []uint64) status {
	id := uint32(s[0])
	if int(id) >= len(vm.metrics) {
		return statusNotFound
	}
	vm.metrics[id].Value = s[1]
	return statusOK
}

func (vm *VM) getMetric(s []uint64) status {
	id := uint32(s[0])
	if int(id) >= len(vm.metrics) {
		return statusNotFound
	}
	if !vm.mem.WriteUint64Le(uint32(s[1]), vm.metrics[id].Value) {
		return statusBadArgument
	}
	return statusOK
}

func (vm *VM) getProperty(s []uint64) status {
	path, ok := vm.read(s[0], s[1])
	if !ok {
		return statusBadArgument
	}
	v, found := vm.props[string(path)]
	if !found {
		return statusNotFound
	}
	return vm.copyOut(v, s[2], s[3])
}

func (vm *VM) setProperty(s []uint64) status {
	path, ok1 := vm.read(s[0], s[1])
	value, ok2 := vm.read(s[2], s[3])
	if !ok1 || !ok2 {
		return statusBadArgument
	}
	vm.props[string(path)] = append([]byte(nil), value...)
	return statusOK
}

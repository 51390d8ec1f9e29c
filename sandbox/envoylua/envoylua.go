// Package envoylua runs the request side of Envoy's Lua HTTP filter
// (envoy.filters.http.lua) for the sandbox's data plane: a script's
// envoy_on_request on one request's headers, through the part of Envoy's
// stream handle API that Tugboat's filters use. It does no I/O: no
// Kubernetes, no network, and scripts get no os or io library, so they
// cannot reach the machine they run on.
//
// # Loading
//
// Load runs a script's top level once, as each Envoy worker does when it
// loads the filter's configuration, and globals the script keeps persist
// across the requests one Script runs, as within one worker. A script that
// does not load is an error: Envoy rejects such a configuration. A script
// that defines no envoy_on_request lets every request through.
//
// # The stream handle
//
//   - handle:headers() is the request's header object: get, add, replace
//     and remove. Names are case-insensitive (Envoy lower-cases them); get
//     returns nil for a missing header and joins repeated values with ",",
//     which is how add's extra values show in Result.Headers.
//   - handle:respond(headers, body) answers the request itself; headers
//     must carry a :status from 200 to 599. Envoy then never resumes the
//     script, so nothing the script does afterwards (another respond, an
//     error, header changes) alters the outcome.
//   - handle:logTrace, logDebug, logInfo, logWarn, logErr and logCritical
//     do nothing here.
//
// Anything else (body, bodyChunks, trailers, httpCall, metadata,
// streamInfo, envoy_on_response) is absent: calling it is a script error.
//
// # Script errors
//
// An error that envoy_on_request raises and does not catch does not fail
// the request. Envoy's documentation of the filter lists one statistic for
// it, the counter "error: Total script execution errors"
// (https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_filters/lua_filter,
// "Statistics"), and says nothing more; what happens to the request is in
// the filter's source (envoyproxy/envoy,
// source/extensions/filters/http/lua/lua_filter.cc: StreamHandleWrapper::start,
// Filter::doHeaders, Filter::scriptError): the error is logged ("script
// log: ..."), counted, the stream handle dropped, and the filter returns
// Continue, so the request goes on to the next filter and the upstream with
// whatever the script did to its headers before the error. Result.Err
// carries that error. A filter that must fail closed catches its own errors
// (pcall) and responds, as shadow.Sanitizer's does.
package envoylua

import (
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// Result is what a filter did with one request.
type Result struct {
	// Headers are the request's headers as the filter left them: what the
	// next filter, and in the end the upstream, receives when Status is 0.
	Headers map[string]string
	// Status is the code the filter answered with itself (handle:respond);
	// 0 when it let the request through.
	Status int
	// Body is the body of that answer.
	Body string
	// Err is a script error envoy_on_request did not catch. Envoy logs and
	// counts it and lets the request continue; so does Result.
	Err error
}

// Script is a loaded filter script: one Lua state, as one Envoy worker
// holds. It is not safe for concurrent use.
type Script struct {
	l         *lua.LState
	onRequest *lua.LFunction // nil: the script does not hook requests
	handle    *lua.LTable    // metatables of the handle and header objects
	headers   *lua.LTable
}

// Load loads src as Envoy loads a Lua filter's inline source. The caller
// must Close the script.
func Load(src string) (*Script, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.StringLibName, lua.OpenString},
		{lua.MathLibName, lua.OpenMath},
		{lua.CoroutineLibName, lua.OpenCoroutine},
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.open), Protect: true}, lua.LString(lib.name)); err != nil {
			l.Close()
			return nil, fmt.Errorf("open lua library %q: %w", lib.name, err)
		}
	}
	// The base library reaches files; Envoy's print writes to its stdout,
	// which the sandbox has no use for.
	l.SetGlobal("dofile", lua.LNil)
	l.SetGlobal("loadfile", lua.LNil)
	l.SetGlobal("print", l.NewFunction(func(*lua.LState) int { return 0 }))

	if err := l.DoString(src); err != nil {
		l.Close()
		return nil, fmt.Errorf("load lua filter: %s", message(err))
	}
	s := &Script{l: l}
	switch fn := l.GetGlobal("envoy_on_request").(type) {
	case *lua.LFunction:
		s.onRequest = fn
	case *lua.LNilType:
	default:
		l.Close()
		return nil, fmt.Errorf("load lua filter: envoy_on_request is a %s, not a function", fn.Type())
	}
	s.handle = methods(l, map[string]lua.LGFunction{
		"headers": handleHeaders, "respond": handleRespond,
		"logTrace": nop, "logDebug": nop, "logInfo": nop, "logWarn": nop, "logErr": nop, "logCritical": nop,
	})
	s.headers = methods(l, map[string]lua.LGFunction{
		"get": headersGet, "add": headersAdd, "replace": headersReplace, "remove": headersRemove,
	})
	return s, nil
}

// Close releases the script's Lua state.
func (s *Script) Close() { s.l.Close() }

// Run loads src, runs envoy_on_request once on headers, and closes it.
func Run(src string, headers map[string]string) (Result, error) {
	s, err := Load(src)
	if err != nil {
		return Result{}, err
	}
	defer s.Close()
	return s.OnRequest(headers), nil
}

// OnRequest runs envoy_on_request on a request's headers, which it does
// not change.
func (s *Script) OnRequest(headers map[string]string) Result {
	st := &stream{s: s, headers: make(map[string]string, len(headers))}
	for k, v := range headers {
		st.add(k, v)
	}
	if s.onRequest != nil {
		ud := s.l.NewUserData()
		ud.Value = st
		ud.Metatable = s.handle
		if err := s.l.CallByParam(lua.P{Fn: s.onRequest, Protect: true}, ud); err != nil && !st.responded() {
			st.err = errors.New(message(err))
		}
		st.done = true
	}
	return Result{Headers: maps.Clone(st.headers), Status: st.status, Body: st.body, Err: st.err}
}

// stream is one request as the script sees it.
type stream struct {
	s       *Script
	headers map[string]string
	obj     *lua.LUserData // the header object, made on first use
	status  int
	body    string
	err     error
	done    bool // envoy_on_request returned: the handle is dead
}

func (st *stream) responded() bool { return st.status != 0 }

func (st *stream) add(name, value string) {
	name = strings.ToLower(name)
	if v, ok := st.headers[name]; ok {
		value = v + "," + value
	}
	st.headers[name] = value
}

// methods is a metatable whose __index holds fns.
func methods(l *lua.LState, fns map[string]lua.LGFunction) *lua.LTable {
	mt := l.NewTable()
	l.SetField(mt, "__index", l.SetFuncs(l.NewTable(), fns))
	l.SetField(mt, "__metatable", lua.LFalse)
	return mt
}

// streamArg is the stream behind a method's receiver: the handle or the
// header object, called with ':' while envoy_on_request runs.
func streamArg(l *lua.LState) *stream {
	st, ok := l.CheckUserData(1).Value.(*stream)
	if !ok {
		l.ArgError(1, "not a stream handle or header object; call methods with ':'")
	}
	if st.done {
		l.RaiseError("the stream handle is used outside envoy_on_request")
	}
	return st
}

func nop(l *lua.LState) int {
	streamArg(l)
	return 0
}

func handleHeaders(l *lua.LState) int {
	st := streamArg(l)
	if st.obj == nil {
		st.obj = l.NewUserData()
		st.obj.Value = st
		st.obj.Metatable = st.s.headers
	}
	l.Push(st.obj)
	return 1
}

// handleRespond keeps the first answer: Envoy never resumes a script that
// responded, so whatever it does after cannot change the outcome.
func handleRespond(l *lua.LState) int {
	st := streamArg(l)
	tbl := l.CheckTable(2)
	body := l.OptString(3, "")
	code := 0
	tbl.ForEach(func(k, v lua.LValue) {
		if s, ok := k.(lua.LString); ok && s == ":status" {
			code, _ = strconv.Atoi(lua.LVAsString(v))
		}
	})
	if code < 200 || code > 599 {
		l.RaiseError(":status must be between 200-599")
	}
	if !st.responded() {
		st.status, st.body = code, body
	}
	return 0
}

func headersGet(l *lua.LState) int {
	st := streamArg(l)
	if v, ok := st.headers[strings.ToLower(l.CheckString(2))]; ok {
		l.Push(lua.LString(v))
	} else {
		l.Push(lua.LNil)
	}
	return 1
}

func headersAdd(l *lua.LState) int {
	streamArg(l).add(l.CheckString(2), l.CheckString(3))
	return 0
}

func headersReplace(l *lua.LState) int {
	streamArg(l).headers[strings.ToLower(l.CheckString(2))] = l.CheckString(3)
	return 0
}

func headersRemove(l *lua.LState) int {
	delete(streamArg(l).headers, strings.ToLower(l.CheckString(2)))
	return 0
}

// message is a Lua error's message, without gopher-lua's stack trace.
func message(err error) string {
	var apiErr *lua.ApiError
	if errors.As(err, &apiErr) && apiErr.Object != nil {
		return apiErr.Object.String()
	}
	return err.Error()
}

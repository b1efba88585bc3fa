;; One guest with every behaviour, chosen per message by the first byte of its body:
;; `t` traps, `l` loops forever, `m` grows memory until refused (then traps), `o` pushes until
;; `push` refuses and then returns `Ok` (ignoring the refusal), `u` pushes to an undeclared
;; subject, `e` answers `Err("bad input")`. Anything else is echoed to the subject `echo` (same
;; properties, content type, body and partition key), its id logged at info level, and the state
;; key `count` (a little-endian u32) incremented. `init` logs the variable `greeting` if there
;; is one; `tick` stores the time under `last-tick`; `complete` logs `complete` at debug level.
;; Shared by the host tests and the runtime tests of the CLI crate.
(module
  (import "messagehandler:handler/host@1.0.0" "push"
    (func $push (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32)))
  (import "messagehandler:handler/host@1.0.0" "log" (func $log (param i32 i32 i32)))
  (import "messagehandler:handler/host@1.0.0" "variable" (func $variable (param i32 i32 i32)))
  (import "messagehandler:handler/state@1.0.0" "get" (func $get (param i32 i32 i32)))
  (import "messagehandler:handler/state@1.0.0" "set" (func $set (param i32 i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 1024) "echo")
  (data (i32.const 1040) "count")
  (data (i32.const 1056) "greeting")
  (data (i32.const 1072) "undeclared")
  (data (i32.const 1088) "bad input")
  (data (i32.const 1104) "last-tick")
  (data (i32.const 1120) "complete")
  (global $heap (mut i32) (i32.const 8192))

  ;; A bump allocator: the host allocates the arguments of every call with it.
  (func (export "cabi_realloc") (param $old i32) (param $old_size i32) (param $align i32)
      (param $size i32) (result i32)
    (local $ptr i32)
    (local.set $ptr
      (i32.and
        (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
        (i32.sub (i32.const 0) (local.get $align))))
    (global.set $heap (i32.add (local.get $ptr) (local.get $size)))
    (block $enough
      (loop $grow
        (br_if $enough (i32.le_u (global.get $heap) (i32.shl (memory.size) (i32.const 16))))
        (if (i32.eq (memory.grow (i32.const 1)) (i32.const -1)) (then unreachable))
        (br $grow)))
    (local.get $ptr))

  ;; Results of the exports live at 16 (tag, string pointer, string length).
  (func $ok (result i32)
    (i32.store8 (i32.const 16) (i32.const 0))
    (i32.const 16))
  (func $err (param $ptr i32) (param $len i32) (result i32)
    (i32.store8 (i32.const 16) (i32.const 1))
    (i32.store (i32.const 20) (local.get $ptr))
    (i32.store (i32.const 24) (local.get $len))
    (i32.const 16))

  (func (export "init") (param i32 i32) (result i32)
    (call $variable (i32.const 1056) (i32.const 8) (i32.const 48))
    (if (i32.load8_u (i32.const 48))
      (then (call $log (i32.const 2) (i32.load (i32.const 52)) (i32.load (i32.const 56)))))
    (call $ok))

  ;; Echoes the message at $m; answers 0, or the result of a refused push (at 32).
  (func $echo (param $m i32) (result i32)
    (call $push (i32.const 1024) (i32.const 4)
      (i32.load offset=16 (local.get $m)) (i32.load offset=20 (local.get $m))
      (i32.load offset=24 (local.get $m)) (i32.load offset=28 (local.get $m))
      (i32.load offset=32 (local.get $m)) (i32.load offset=36 (local.get $m))
      (i32.load offset=40 (local.get $m)) (i32.load offset=44 (local.get $m))
      (i32.const 32))
    (if (i32.load8_u (i32.const 32)) (then (return (i32.const 32))))
    (call $log (i32.const 2) (i32.load (local.get $m)) (i32.load offset=4 (local.get $m)))
    (call $get (i32.const 1040) (i32.const 5) (i32.const 48))
    (i32.store (i32.const 64)
      (i32.add (i32.const 1)
        (if (result i32) (i32.load8_u (i32.const 48))
          (then (i32.load (i32.load (i32.const 52))))
          (else (i32.const 0)))))
    (call $set (i32.const 1040) (i32.const 5) (i32.const 64) (i32.const 4))
    (i32.const 0))

  (func (export "handle") (param $ptr i32) (param $len i32) (result i32)
    (local $i i32) (local $m i32) (local $op i32) (local $r i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
        (local.set $m (i32.add (local.get $ptr) (i32.mul (local.get $i) (i32.const 48))))
        (local.set $op
          (if (result i32) (i32.load offset=36 (local.get $m))
            (then (i32.load8_u (i32.load offset=32 (local.get $m))))
            (else (i32.const 0))))
        (if (i32.eq (local.get $op) (i32.const 116)) (then unreachable))
        (if (i32.eq (local.get $op) (i32.const 108)) (then (loop $forever (br $forever))))
        (if (i32.eq (local.get $op) (i32.const 109))
          (then
            (loop $hog
              (if (i32.eq (memory.grow (i32.const 16)) (i32.const -1)) (then unreachable))
              (br $hog))))
        (if (i32.eq (local.get $op) (i32.const 111))
          (then
            (loop $flood
              (call $push (i32.const 1024) (i32.const 4) (i32.const 0) (i32.const 0)
                (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)
                (i32.const 0) (i32.const 32))
              (br_if $flood (i32.eqz (i32.load8_u (i32.const 32)))))
            (return (call $ok))))
        (if (i32.eq (local.get $op) (i32.const 117))
          (then
            (call $push (i32.const 1072) (i32.const 10) (i32.const 0) (i32.const 0)
              (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)
              (i32.const 0) (i32.const 32))
            (return (i32.const 32))))
        (if (i32.eq (local.get $op) (i32.const 101))
          (then (return (call $err (i32.const 1088) (i32.const 9)))))
        (local.set $r (call $echo (local.get $m)))
        (if (local.get $r) (then (return (local.get $r))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (call $ok))

  (func (export "tick") (param $now i64) (result i32)
    (i64.store (i32.const 64) (local.get $now))
    (call $set (i32.const 1104) (i32.const 9) (i32.const 64) (i32.const 8))
    (call $ok))

  (func (export "complete") (result i32)
    (call $log (i32.const 1) (i32.const 1120) (i32.const 8))
    (call $ok))
)

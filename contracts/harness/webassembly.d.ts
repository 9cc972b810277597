// The WebAssembly JS API as far as the harness uses it: tsconfig's `lib` has no DOM and @types/node 22
// does not declare it, though Node provides it globally.
declare namespace WebAssembly {
  class Module {
    constructor (bytes: Uint8Array)
    static imports (module: Module): Array<{ module: string, name: string, kind: string }>
    static exports (module: Module): Array<{ name: string, kind: string }>
  }
  class Instance {
    readonly exports: Record<string, unknown>
  }
  class Global {
    value: any
  }
  class Memory {
    readonly buffer: ArrayBuffer
  }
  function instantiate (module: Module, imports: Record<string, Record<string, unknown>>): Promise<Instance>
}

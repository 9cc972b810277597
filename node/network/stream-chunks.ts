/**
 * The chunks a libp2p 3 stream receives, as an async iterable that ends when the remote has closed its
 * writable end: also when it closed it before anyone started reading.
 *
 * libp2p's own iterator (`for await (const chunk of stream)`) adds its listeners only when the first chunk is
 * asked for, and ends on 'remoteCloseWrite' or 'close'. When the remote writes and closes before that (a short
 * request whose bytes and FIN arrive while the protocol is still being negotiated), the data waits in the
 * stream's buffer, 'remoteCloseWrite' has already been dispatched to nobody, and the 'end' that follows the
 * buffered data is not listened to: the iterator never ends. A verdict handler waiting for the end of such a
 * stream hung until the sender gave up (2× the collect timeout, about 7 s a round, seen in the overlap test).
 *
 * Here the listeners are attached when this function is called (readers call it as they are created), and the
 * end is taken from 'end', 'remoteCloseWrite', 'close', or `readableEnded` when it had already passed.
 */
import type { MessageStream } from '@libp2p/interface'

type Chunk = Uint8Array | { subarray: () => Uint8Array, byteLength: number, [Symbol.iterator]: () => Iterator<Uint8Array> }

/**
 * The iterator a reader pulls chunks from: a libp2p stream through {@link streamChunks}, any other async iterable
 * (tests feed readers plain ones) through its own iterator.
 */
export function chunksOf<C> (source: MessageStream | AsyncIterable<C>): AsyncIterator<C | Chunk> {
  return isMessageStream(source) ? streamChunks(source) : source[Symbol.asyncIterator]()
}

/** True for a libp2p 3 stream (an event target that says whether its readable end has ended). */
function isMessageStream (source: unknown): source is MessageStream {
  return typeof source === 'object' && source != null && typeof (source as MessageStream).addEventListener === 'function' && 'readableEnded' in source
}

export function streamChunks (stream: MessageStream): AsyncIterable<Chunk> & AsyncIterator<Chunk> {
  const queue: Chunk[] = []
  let ended = false
  let failure: Error | undefined
  let wake: (() => void) | undefined
  const notify = (): void => { const w = wake; wake = undefined; w?.() }

  const onMessage = (evt: Event): void => { queue.push((evt as Event & { data: Chunk }).data); notify() }
  const onEnd = (): void => { ended = true; notify() }
  const onClose = (evt: Event): void => {
    const err = (evt as Event & { error?: Error }).error
    if (err != null && failure == null) failure = err
    onEnd()
  }
  const detach = (): void => {
    stream.removeEventListener('message', onMessage)
    stream.removeEventListener('end', onEnd)
    stream.removeEventListener('remoteCloseWrite', onEnd)
    stream.removeEventListener('close', onClose)
  }
  // Adding the 'message' listener makes the stream dispatch what it buffered, in a microtask queued now.
  stream.addEventListener('message', onMessage)
  stream.addEventListener('end', onEnd)
  stream.addEventListener('remoteCloseWrite', onEnd)
  stream.addEventListener('close', onClose)
  // The end already passed: it is taken after that dispatch (microtasks run in order), so no buffered byte is lost.
  if (stream.readableEnded) queueMicrotask(onEnd)

  const iterator: AsyncIterable<Chunk> & AsyncIterator<Chunk> = {
    async next (): Promise<IteratorResult<Chunk>> {
      for (;;) {
        const chunk = queue.shift()
        if (chunk != null) return { done: false, value: chunk }
        if (failure != null) { detach(); throw failure }
        if (ended) { detach(); return { done: true, value: undefined } }
        await new Promise<void>(resolve => { wake = resolve })
      }
    },
    async return (): Promise<IteratorResult<Chunk>> {
      detach()
      queue.length = 0
      return { done: true, value: undefined }
    },
    [Symbol.asyncIterator] () { return iterator }
  }
  return iterator
}

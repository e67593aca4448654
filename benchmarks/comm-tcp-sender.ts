/**
 * The sending end of the loopback TCP ceiling (comm-ceilings.ts): listens on a free loopback port, prints
 * it, then for each one-byte request from the receiver writes `bytesPerRound` bytes in large writes.
 * Usage: node --import tsx comm-tcp-sender.ts <bytesPerRound> <writeBytes>
 */
import net from 'node:net';

const bytesPerRound = Number(process.argv[2] ?? 256 << 20);
const writeBytes = Number(process.argv[3] ?? 16 << 20);
// one buffer written again and again: the kernel copy is what is measured, not filling memory
const chunk = Buffer.alloc(writeBytes, 7);

const server = net.createServer((socket) => {
  socket.setNoDelay(true);
  socket.on('data', (request) => {
    for (let r = 0; r < request.length; r++) {
      for (let sent = 0; sent < bytesPerRound; sent += writeBytes)
        socket.write(sent + writeBytes <= bytesPerRound ? chunk : chunk.subarray(0, bytesPerRound - sent));
    }
  });
  socket.on('error', () => process.exit(1));
  socket.on('close', () => server.close(() => process.exit(0)));
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${(server.address() as net.AddressInfo).port}\n`);
});

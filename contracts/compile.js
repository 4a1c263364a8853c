// Compiles Anchor.sol with solc-js into Anchor.abi and Anchor.bin, the files
// abigen binds and that the repository commits, so a Go build needs no npm.
//
//   cd contracts && npm ci && node compile.js
//
// The settings below are part of the deployed contract's identity (they
// decide its bytecode): change them only together with a redeploy.
'use strict';

const fs = require('fs');
const path = require('path');
const solc = require('solc');

const SOURCE = 'Anchor.sol';
const CONTRACT = 'Anchor';
const EVM_VERSION = 'cancun'; // supported by mainnet and the common L2s
const OPTIMIZER_RUNS = 200;
const COMPILER_VERSION = require('./package.json').devDependencies.solc;

function main() {
  if (!solc.version().startsWith(COMPILER_VERSION + '+')) {
    throw new Error(`solc ${solc.version()} installed, package.json pins ${COMPILER_VERSION}: run npm ci`);
  }
  const input = {
    language: 'Solidity',
    sources: { [SOURCE]: { content: fs.readFileSync(path.join(__dirname, SOURCE), 'utf8') } },
    settings: {
      evmVersion: EVM_VERSION,
      optimizer: { enabled: true, runs: OPTIMIZER_RUNS },
      outputSelection: { [SOURCE]: { [CONTRACT]: ['abi', 'evm.bytecode.object'] } },
    },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input)));
  let failed = false;
  for (const diag of output.errors || []) {
    console.error(diag.formattedMessage);
    failed = failed || diag.severity === 'error';
  }
  if (failed) {
    process.exit(1);
  }
  const contract = output.contracts[SOURCE][CONTRACT];
  fs.writeFileSync(path.join(__dirname, CONTRACT + '.abi'), JSON.stringify(contract.abi, null, 2) + '\n');
  fs.writeFileSync(path.join(__dirname, CONTRACT + '.bin'), contract.evm.bytecode.object + '\n');
  console.log(`compiled ${SOURCE} with solc ${solc.version()} (evm ${EVM_VERSION}, optimizer ${OPTIMIZER_RUNS} runs)`);
}

main();

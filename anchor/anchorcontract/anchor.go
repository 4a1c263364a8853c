// Code generated via abigen V2 - DO NOT EDIT.
// This file is a generated binding and any manual changes will be lost.

package anchorcontract

import (
	"bytes"
	"errors"
	"math/big"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

// Reference imports to suppress errors if they are not otherwise used.
var (
	_ = bytes.Equal
	_ = errors.New
	_ = big.NewInt
	_ = common.Big1
	_ = types.BloomLookup
	_ = abi.ConvertType
)

// AnchorMetaData contains all meta data concerning the Anchor contract.
var AnchorMetaData = bind.MetaData{
	ABI: "[{\"inputs\":[{\"internalType\":\"address\",\"name\":\"writer_\",\"type\":\"address\"}],\"stateMutability\":\"nonpayable\",\"type\":\"constructor\"},{\"inputs\":[{\"internalType\":\"address\",\"name\":\"caller\",\"type\":\"address\"}],\"name\":\"NotOwner\",\"type\":\"error\"},{\"inputs\":[{\"internalType\":\"address\",\"name\":\"caller\",\"type\":\"address\"}],\"name\":\"NotWriter\",\"type\":\"error\"},{\"inputs\":[{\"internalType\":\"uint64\",\"name\":\"treeSize\",\"type\":\"uint64\"},{\"internalType\":\"uint64\",\"name\":\"latestSize\",\"type\":\"uint64\"}],\"name\":\"SizeNotIncreasing\",\"type\":\"error\"},{\"inputs\":[],\"name\":\"ZeroRoot\",\"type\":\"error\"},{\"inputs\":[],\"name\":\"ZeroWriter\",\"type\":\"error\"},{\"anonymous\":false,\"inputs\":[{\"indexed\":true,\"internalType\":\"uint64\",\"name\":\"treeSize\",\"type\":\"uint64\"},{\"indexed\":false,\"internalType\":\"bytes32\",\"name\":\"root\",\"type\":\"bytes32\"}],\"name\":\"Anchored\",\"type\":\"event\"},{\"anonymous\":false,\"inputs\":[{\"indexed\":true,\"internalType\":\"address\",\"name\":\"previousWriter\",\"type\":\"address\"},{\"indexed\":true,\"internalType\":\"address\",\"name\":\"newWriter\",\"type\":\"address\"}],\"name\":\"WriterChanged\",\"type\":\"event\"},{\"inputs\":[{\"internalType\":\"bytes32\",\"name\":\"root\",\"type\":\"bytes32\"},{\"internalType\":\"uint64\",\"name\":\"treeSize\",\"type\":\"uint64\"}],\"name\":\"anchor\",\"outputs\":[],\"stateMutability\":\"nonpayable\",\"type\":\"function\"},{\"inputs\":[],\"name\":\"latestSize\",\"outputs\":[{\"internalType\":\"uint64\",\"name\":\"\",\"type\":\"uint64\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[],\"name\":\"owner\",\"outputs\":[{\"internalType\":\"address\",\"name\":\"\",\"type\":\"address\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[{\"internalType\":\"uint64\",\"name\":\"treeSize\",\"type\":\"uint64\"}],\"name\":\"rootAt\",\"outputs\":[{\"internalType\":\"bytes32\",\"name\":\"\",\"type\":\"bytes32\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[{\"internalType\":\"address\",\"name\":\"newWriter\",\"type\":\"address\"}],\"name\":\"setWriter\",\"outputs\":[],\"stateMutability\":\"nonpayable\",\"type\":\"function\"},{\"inputs\":[],\"name\":\"writer\",\"outputs\":[{\"internalType\":\"address\",\"name\":\"\",\"type\":\"address\"}],\"stateMutability\":\"view\",\"type\":\"function\"}]",
	ID:  "Anchor",
	Bin: "0x60a060405234801561000f575f5ffd5b506040516104db3803806104db83398101604081905261002e916100a6565b6001600160a01b0381166100555760405163895c0eb160e01b815260040160405180910390fd5b336080525f80546001600160a01b0319166001600160a01b03831690811782556040519091907f8af12c858fbc2fbff99e242123a276a600c4ee4bf943a876074e32b72c5570e9908290a3506100d3565b5f602082840312156100b6575f5ffd5b81516001600160a01b03811681146100cc575f5ffd5b9392505050565b6080516103ea6100f15f395f818160e0015261015701526103ea5ff3fe608060405234801561000f575f5ffd5b5060043610610060575f3560e01c80631293ed371461006457806339e205231461009c578063453a2abc146100b15780638da5cb5b146100db578063db2c4aca14610102578063eaa38b4114610115575b5f5ffd5b5f5461007e90600160a01b900467ffffffffffffffff1681565b60405167ffffffffffffffff90911681526020015b60405180910390f35b6100af6100aa366004610328565b61014c565b005b5f546100c3906001600160a01b031681565b6040516001600160a01b039091168152602001610093565b6100c37f000000000000000000000000000000000000000000000000000000000000000081565b6100af610110366004610371565b61021c565b61013e61012336600461039b565b67ffffffffffffffff165f9081526001602052604090205490565b604051908152602001610093565b336001600160a01b037f0000000000000000000000000000000000000000000000000000000000000000161461019c5760405163245aecd360e01b81523360048201526024015b60405180910390fd5b6001600160a01b0381166101c35760405163895c0eb160e01b815260040160405180910390fd5b5f80546040516001600160a01b03808516939216917f8af12c858fbc2fbff99e242123a276a600c4ee4bf943a876074e32b72c5570e991a35f80546001600160a01b0319166001600160a01b0392909216919091179055565b5f546001600160a01b0316331461024857604051631765348f60e21b8152336004820152602401610193565b5f5467ffffffffffffffff600160a01b90910481169082161161029d575f54604051630bcdc6e560e01b815267ffffffffffffffff8381166004830152600160a01b9092049091166024820152604401610193565b816102bb5760405163b263ae7360e01b815260040160405180910390fd5b67ffffffffffffffff81165f818152600160209081526040808320869055825467ffffffffffffffff60a01b1916600160a01b85021790925590518481527f4ac5b9bdb01817da80ec1c33e76c5bef927ab969dd8e8ba4ce21da0d7996e56f910160405180910390a25050565b5f60208284031215610338575f5ffd5b81356001600160a01b038116811461034e575f5ffd5b9392505050565b803567ffffffffffffffff8116811461036c575f5ffd5b919050565b5f5f60408385031215610382575f5ffd5b8235915061039260208401610355565b90509250929050565b5f602082840312156103ab575f5ffd5b61034e8261035556fea26469706673582212209a89ac6d0234abb2289d280a6a872ae3a576b8e166e2d2e9d6f7dfa5137be21f64736f6c63430008250033",
}

// Anchor is an auto generated Go binding around an Ethereum contract.
type Anchor struct {
	abi abi.ABI
}

// GetABI returns the ABI associated with this contract binding.
func (c *Anchor) GetABI() abi.ABI {
	return c.abi
}

// NewAnchor creates a new instance of Anchor.
func NewAnchor() *Anchor {
	parsed, err := AnchorMetaData.ParseABI()
	if err != nil {
		panic(errors.New("invalid ABI: " + err.Error()))
	}
	return &Anchor{abi: *parsed}
}

// Instance creates a wrapper for a deployed contract instance at the given address.
// Use this to create the instance object passed to abigen v2 library functions Call, Transact, etc.
func (c *Anchor) Instance(backend bind.ContractBackend, addr common.Address) *bind.BoundContract {
	return bind.NewBoundContract(addr, c.abi, backend, backend, backend)
}

// PackConstructor is the Go binding used to pack the parameters required for
// contract deployment.
//
// Solidity: constructor(address writer_) returns()
func (anchor *Anchor) PackConstructor(writer_ common.Address) []byte {
	enc, err := anchor.abi.Pack("", writer_)
	if err != nil {
		panic(err)
	}
	return enc
}

// PackAnchor is the Go binding used to pack the parameters required for calling
// the contract method with ID 0xdb2c4aca.  This method will panic if any
// invalid/nil inputs are passed.
//
// Solidity: function anchor(bytes32 root, uint64 treeSize) returns()
func (anchor *Anchor) PackAnchor(root [32]byte, treeSize uint64) []byte {
	enc, err := anchor.abi.Pack("anchor", root, treeSize)
	if err != nil {
		panic(err)
	}
	return enc
}

// TryPackAnchor is the Go binding used to pack the parameters required for calling
// the contract method with ID 0xdb2c4aca.  This method will return an error
// if any inputs are invalid/nil.
//
// Solidity: function anchor(bytes32 root, uint64 treeSize) returns()
func (anchor *Anchor) TryPackAnchor(root [32]byte, treeSize uint64) ([]byte, error) {
	return anchor.abi.Pack("anchor", root, treeSize)
}

// PackLatestSize is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x1293ed37.  This method will panic if any
// invalid/nil inputs are passed.
//
// Solidity: function latestSize() view returns(uint64)
func (anchor *Anchor) PackLatestSize() []byte {
	enc, err := anchor.abi.Pack("latestSize")
	if err != nil {
		panic(err)
	}
	return enc
}

// TryPackLatestSize is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x1293ed37.  This method will return an error
// if any inputs are invalid/nil.
//
// Solidity: function latestSize() view returns(uint64)
func (anchor *Anchor) TryPackLatestSize() ([]byte, error) {
	return anchor.abi.Pack("latestSize")
}

// UnpackLatestSize is the Go binding that unpacks the parameters returned
// from invoking the contract method with ID 0x1293ed37.
//
// Solidity: function latestSize() view returns(uint64)
func (anchor *Anchor) UnpackLatestSize(data []byte) (uint64, error) {
	out, err := anchor.abi.Unpack("latestSize", data)
	if err != nil {
		return *new(uint64), err
	}
	out0 := *abi.ConvertType(out[0], new(uint64)).(*uint64)
	return out0, nil
}

// PackOwner is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x8da5cb5b.  This method will panic if any
// invalid/nil inputs are passed.
//
// Solidity: function owner() view returns(address)
func (anchor *Anchor) PackOwner() []byte {
	enc, err := anchor.abi.Pack("owner")
	if err != nil {
		panic(err)
	}
	return enc
}

// TryPackOwner is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x8da5cb5b.  This method will return an error
// if any inputs are invalid/nil.
//
// Solidity: function owner() view returns(address)
func (anchor *Anchor) TryPackOwner() ([]byte, error) {
	return anchor.abi.Pack("owner")
}

// UnpackOwner is the Go binding that unpacks the parameters returned
// from invoking the contract method with ID 0x8da5cb5b.
//
// Solidity: function owner() view returns(address)
func (anchor *Anchor) UnpackOwner(data []byte) (common.Address, error) {
	out, err := anchor.abi.Unpack("owner", data)
	if err != nil {
		return *new(common.Address), err
	}
	out0 := *abi.ConvertType(out[0], new(common.Address)).(*common.Address)
	return out0, nil
}

// PackRootAt is the Go binding used to pack the parameters required for calling
// the contract method with ID 0xeaa38b41.  This method will panic if any
// invalid/nil inputs are passed.
//
// Solidity: function rootAt(uint64 treeSize) view returns(bytes32)
func (anchor *Anchor) PackRootAt(treeSize uint64) []byte {
	enc, err := anchor.abi.Pack("rootAt", treeSize)
	if err != nil {
		panic(err)
	}
	return enc
}

// TryPackRootAt is the Go binding used to pack the parameters required for calling
// the contract method with ID 0xeaa38b41.  This method will return an error
// if any inputs are invalid/nil.
//
// Solidity: function rootAt(uint64 treeSize) view returns(bytes32)
func (anchor *Anchor) TryPackRootAt(treeSize uint64) ([]byte, error) {
	return anchor.abi.Pack("rootAt", treeSize)
}

// UnpackRootAt is the Go binding that unpacks the parameters returned
// from invoking the contract method with ID 0xeaa38b41.
//
// Solidity: function rootAt(uint64 treeSize) view returns(bytes32)
func (anchor *Anchor) UnpackRootAt(data []byte) ([32]byte, error) {
	out, err := anchor.abi.Unpack("rootAt", data)
	if err != nil {
		return *new([32]byte), err
	}
	out0 := *abi.ConvertType(out[0], new([32]byte)).(*[32]byte)
	return out0, nil
}

// PackSetWriter is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x39e20523.  This method will panic if any
// invalid/nil inputs are passed.
//
// Solidity: function setWriter(address newWriter) returns()
func (anchor *Anchor) PackSetWriter(newWriter common.Address) []byte {
	enc, err := anchor.abi.Pack("setWriter", newWriter)
	if err != nil {
		panic(err)
	}
	return enc
}

// TryPackSetWriter is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x39e20523.  This method will return an error
// if any inputs are invalid/nil.
//
// Solidity: function setWriter(address newWriter) returns()
func (anchor *Anchor) TryPackSetWriter(newWriter common.Address) ([]byte, error) {
	return anchor.abi.Pack("setWriter", newWriter)
}

// PackWriter is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x453a2abc.  This method will panic if any
// invalid/nil inputs are passed.
//
// Solidity: function writer() view returns(address)
func (anchor *Anchor) PackWriter() []byte {
	enc, err := anchor.abi.Pack("writer")
	if err != nil {
		panic(err)
	}
	return enc
}

// TryPackWriter is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x453a2abc.  This method will return an error
// if any inputs are invalid/nil.
//
// Solidity: function writer() view returns(address)
func (anchor *Anchor) TryPackWriter() ([]byte, error) {
	return anchor.abi.Pack("writer")
}

// UnpackWriter is the Go binding that unpacks the parameters returned
// from invoking the contract method with ID 0x453a2abc.
//
// Solidity: function writer() view returns(address)
func (anchor *Anchor) UnpackWriter(data []byte) (common.Address, error) {
	out, err := anchor.abi.Unpack("writer", data)
	if err != nil {
		return *new(common.Address), err
	}
	out0 := *abi.ConvertType(out[0], new(common.Address)).(*common.Address)
	return out0, nil
}

// AnchorAnchored represents a Anchored event raised by the Anchor contract.
type AnchorAnchored struct {
	TreeSize uint64
	Root     [32]byte
	Raw      *types.Log // Blockchain specific contextual infos
}

const AnchorAnchoredEventName = "Anchored"

// ContractEventName returns the user-defined event name.
func (AnchorAnchored) ContractEventName() string {
	return AnchorAnchoredEventName
}

// UnpackAnchoredEvent is the Go binding that unpacks the event data emitted
// by contract.
//
// Solidity: event Anchored(uint64 indexed treeSize, bytes32 root)
func (anchor *Anchor) UnpackAnchoredEvent(log *types.Log) (*AnchorAnchored, error) {
	event := "Anchored"
	if len(log.Topics) == 0 {
		return nil, bind.ErrNoEventSignature
	}
	if log.Topics[0] != anchor.abi.Events[event].ID {
		return nil, bind.ErrEventSignatureMismatch
	}
	out := new(AnchorAnchored)
	if len(log.Data) > 0 {
		if err := anchor.abi.UnpackIntoInterface(out, event, log.Data); err != nil {
			return nil, err
		}
	}
	var indexed abi.Arguments
	for _, arg := range anchor.abi.Events[event].Inputs {
		if arg.Indexed {
			indexed = append(indexed, arg)
		}
	}
	if err := abi.ParseTopics(out, indexed, log.Topics[1:]); err != nil {
		return nil, err
	}
	out.Raw = log
	return out, nil
}

// AnchorWriterChanged represents a WriterChanged event raised by the Anchor contract.
type AnchorWriterChanged struct {
	PreviousWriter common.Address
	NewWriter      common.Address
	Raw            *types.Log // Blockchain specific contextual infos
}

const AnchorWriterChangedEventName = "WriterChanged"

// ContractEventName returns the user-defined event name.
func (AnchorWriterChanged) ContractEventName() string {
	return AnchorWriterChangedEventName
}

// UnpackWriterChangedEvent is the Go binding that unpacks the event data emitted
// by contract.
//
// Solidity: event WriterChanged(address indexed previousWriter, address indexed newWriter)
func (anchor *Anchor) UnpackWriterChangedEvent(log *types.Log) (*AnchorWriterChanged, error) {
	event := "WriterChanged"
	if len(log.Topics) == 0 {
		return nil, bind.ErrNoEventSignature
	}
	if log.Topics[0] != anchor.abi.Events[event].ID {
		return nil, bind.ErrEventSignatureMismatch
	}
	out := new(AnchorWriterChanged)
	if len(log.Data) > 0 {
		if err := anchor.abi.UnpackIntoInterface(out, event, log.Data); err != nil {
			return nil, err
		}
	}
	var indexed abi.Arguments
	for _, arg := range anchor.abi.Events[event].Inputs {
		if arg.Indexed {
			indexed = append(indexed, arg)
		}
	}
	if err := abi.ParseTopics(out, indexed, log.Topics[1:]); err != nil {
		return nil, err
	}
	out.Raw = log
	return out, nil
}

// UnpackError attempts to decode the provided error data using user-defined
// error definitions.
func (anchor *Anchor) UnpackError(raw []byte) (any, error) {
	if bytes.Equal(raw[:4], anchor.abi.Errors["NotOwner"].ID.Bytes()[:4]) {
		return anchor.UnpackNotOwnerError(raw[4:])
	}
	if bytes.Equal(raw[:4], anchor.abi.Errors["NotWriter"].ID.Bytes()[:4]) {
		return anchor.UnpackNotWriterError(raw[4:])
	}
	if bytes.Equal(raw[:4], anchor.abi.Errors["SizeNotIncreasing"].ID.Bytes()[:4]) {
		return anchor.UnpackSizeNotIncreasingError(raw[4:])
	}
	if bytes.Equal(raw[:4], anchor.abi.Errors["ZeroRoot"].ID.Bytes()[:4]) {
		return anchor.UnpackZeroRootError(raw[4:])
	}
	if bytes.Equal(raw[:4], anchor.abi.Errors["ZeroWriter"].ID.Bytes()[:4]) {
		return anchor.UnpackZeroWriterError(raw[4:])
	}
	return nil, errors.New("Unknown error")
}

// AnchorNotOwner represents a NotOwner error raised by the Anchor contract.
type AnchorNotOwner struct {
	Caller common.Address
}

// ErrorID returns the hash of canonical representation of the error's signature.
//
// Solidity: error NotOwner(address caller)
func AnchorNotOwnerErrorID() common.Hash {
	return common.HexToHash("0x245aecd3fabbd17d6c3c92dc7f0ab916ea8cbf6fc1862c8b56893090ac3fff4c")
}

// UnpackNotOwnerError is the Go binding used to decode the provided
// error data into the corresponding Go error struct.
//
// Solidity: error NotOwner(address caller)
func (anchor *Anchor) UnpackNotOwnerError(raw []byte) (*AnchorNotOwner, error) {
	out := new(AnchorNotOwner)
	if err := anchor.abi.UnpackIntoInterface(out, "NotOwner", raw); err != nil {
		return nil, err
	}
	return out, nil
}

// AnchorNotWriter represents a NotWriter error raised by the Anchor contract.
type AnchorNotWriter struct {
	Caller common.Address
}

// ErrorID returns the hash of canonical representation of the error's signature.
//
// Solidity: error NotWriter(address caller)
func AnchorNotWriterErrorID() common.Hash {
	return common.HexToHash("0x5d94d23c493b63f7fef68a0c8cb0de7cf59962ab607defa79710cd4783474547")
}

// UnpackNotWriterError is the Go binding used to decode the provided
// error data into the corresponding Go error struct.
//
// Solidity: error NotWriter(address caller)
func (anchor *Anchor) UnpackNotWriterError(raw []byte) (*AnchorNotWriter, error) {
	out := new(AnchorNotWriter)
	if err := anchor.abi.UnpackIntoInterface(out, "NotWriter", raw); err != nil {
		return nil, err
	}
	return out, nil
}

// AnchorSizeNotIncreasing represents a SizeNotIncreasing error raised by the Anchor contract.
type AnchorSizeNotIncreasing struct {
	TreeSize   uint64
	LatestSize uint64
}

// ErrorID returns the hash of canonical representation of the error's signature.
//
// Solidity: error SizeNotIncreasing(uint64 treeSize, uint64 latestSize)
func AnchorSizeNotIncreasingErrorID() common.Hash {
	return common.HexToHash("0x0bcdc6e587748669f1c3533025860f26ef3fad71563f5cf0ca7a8499ce296678")
}

// UnpackSizeNotIncreasingError is the Go binding used to decode the provided
// error data into the corresponding Go error struct.
//
// Solidity: error SizeNotIncreasing(uint64 treeSize, uint64 latestSize)
func (anchor *Anchor) UnpackSizeNotIncreasingError(raw []byte) (*AnchorSizeNotIncreasing, error) {
	out := new(AnchorSizeNotIncreasing)
	if err := anchor.abi.UnpackIntoInterface(out, "SizeNotIncreasing", raw); err != nil {
		return nil, err
	}
	return out, nil
}

// AnchorZeroRoot represents a ZeroRoot error raised by the Anchor contract.
type AnchorZeroRoot struct {
}

// ErrorID returns the hash of canonical representation of the error's signature.
//
// Solidity: error ZeroRoot()
func AnchorZeroRootErrorID() common.Hash {
	return common.HexToHash("0xb263ae738e814ca9af6ee56bb85daa47624e790421913c947dcba2aac07cfdbd")
}

// UnpackZeroRootError is the Go binding used to decode the provided
// error data into the corresponding Go error struct.
//
// Solidity: error ZeroRoot()
func (anchor *Anchor) UnpackZeroRootError(raw []byte) (*AnchorZeroRoot, error) {
	out := new(AnchorZeroRoot)
	if err := anchor.abi.UnpackIntoInterface(out, "ZeroRoot", raw); err != nil {
		return nil, err
	}
	return out, nil
}

// AnchorZeroWriter represents a ZeroWriter error raised by the Anchor contract.
type AnchorZeroWriter struct {
}

// ErrorID returns the hash of canonical representation of the error's signature.
//
// Solidity: error ZeroWriter()
func AnchorZeroWriterErrorID() common.Hash {
	return common.HexToHash("0x895c0eb12587b7b8732307fc371a4f1d03b41480804c8ed488d785be7ccc95e0")
}

// UnpackZeroWriterError is the Go binding used to decode the provided
// error data into the corresponding Go error struct.
//
// Solidity: error ZeroWriter()
func (anchor *Anchor) UnpackZeroWriterError(raw []byte) (*AnchorZeroWriter, error) {
	out := new(AnchorZeroWriter)
	if err := anchor.abi.UnpackIntoInterface(out, "ZeroWriter", raw); err != nil {
		return nil, err
	}
	return out, nil
}

// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title RenderTrust audit-log anchor
/// @notice Records the roots of RenderTrust's append-only RFC 9162 Merkle log
/// by tree size. Sizes only grow, so the contract is a public, ordered list of
/// the log's checkpoints: an auditor reads rootAt(size) and checks an
/// inclusion or consistency proof against it with nothing but SHA-256.
/// @dev Every anchor costs the same gas: no loops, no growing arrays. It
/// reads one slot (writer and latestSize share it), rewrites that slot
/// (always non-zero, since the writer is never the zero address) and fills
/// one new mapping slot.
contract Anchor {
    /// @notice The only account allowed to anchor. Packed with latestSize.
    address public writer;
    /// @notice The largest tree size anchored so far; 0 before the first.
    uint64 public latestSize;
    /// @notice The account allowed to change the writer.
    address public immutable owner;

    mapping(uint64 treeSize => bytes32 root) private roots;

    /// @notice A root was anchored for a tree size.
    event Anchored(uint64 indexed treeSize, bytes32 root);
    /// @notice The owner replaced the writer.
    event WriterChanged(address indexed previousWriter, address indexed newWriter);

    /// @notice The caller is not the writer.
    error NotWriter(address caller);
    /// @notice The caller is not the owner.
    error NotOwner(address caller);
    /// @notice treeSize is not larger than the latest anchored size.
    error SizeNotIncreasing(uint64 treeSize, uint64 latestSize);
    /// @notice The zero root is reserved: rootAt returns it for sizes never anchored.
    error ZeroRoot();
    /// @notice The writer may not be the zero address.
    error ZeroWriter();

    /// @param writer_ The account that will anchor roots; the deployer becomes owner.
    constructor(address writer_) {
        if (writer_ == address(0)) revert ZeroWriter();
        owner = msg.sender;
        writer = writer_;
        emit WriterChanged(address(0), writer_);
    }

    /// @notice Anchors root as the log's root at treeSize.
    /// @dev Reverts with NotWriter, SizeNotIncreasing or ZeroRoot.
    function anchor(bytes32 root, uint64 treeSize) external {
        if (msg.sender != writer) revert NotWriter(msg.sender);
        if (treeSize <= latestSize) revert SizeNotIncreasing(treeSize, latestSize);
        if (root == bytes32(0)) revert ZeroRoot();
        roots[treeSize] = root;
        latestSize = treeSize;
        emit Anchored(treeSize, root);
    }

    /// @notice Returns the root anchored at treeSize, or zero if that size was never anchored.
    function rootAt(uint64 treeSize) external view returns (bytes32) {
        return roots[treeSize];
    }

    /// @notice Replaces the writer, e.g. after its key was rotated or lost.
    /// @dev Reverts with NotOwner or ZeroWriter.
    function setWriter(address newWriter) external {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        if (newWriter == address(0)) revert ZeroWriter();
        emit WriterChanged(writer, newWriter);
        writer = newWriter;
    }
}
